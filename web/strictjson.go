package web

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// checkKeys walks the single JSON value in data alongside the Go type t it is
// about to be decoded into and refuses what encoding/json lets through
// silently: an object key that names a struct field in another case
// (encoding/json folds case, so "Username" would set username) and a key
// that repeats within one object (encoding/json keeps the last). Device
// payloads refuse both (ingest's own decoder); the API does the same.
// Values decoded by their own UnmarshalJSON or UnmarshalText are passed over
// whole; in values of interface type only repeats are checked. Syntax errors are left to the decode
// that follows.
func checkKeys(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := walkValue(dec, t, "")
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil // truncated: the decoder reports it
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return nil
	}
	return err
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walkValue reads one value from dec, checking its objects against t (nil:
// anything goes, keys are only checked for repeats). at names the value for
// errors ("" for the body, then "duty[0].name" and so on).
func walkValue(dec *json.Decoder, t reflect.Type, at string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		return skipValue(dec) // it decodes itself
	}
	if t != nil && t.Kind() == reflect.Interface {
		t = nil // any JSON: repeats are still checked (a map would keep the last)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkValue(dec, elem, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = map[string]reflect.Type{}
				jsonFields(t, fields)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			name := key
			if at != "" {
				name = at + "." + key
			}
			if seen[key] {
				return fmt.Errorf("key %q appears twice", name)
			}
			seen[key] = true
			vt := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					for f := range fields {
						if strings.EqualFold(f, key) {
							return fmt.Errorf("key %q: keys are case-sensitive, this one is %q", name, f)
						}
					}
					// unknown: DisallowUnknownFields names it
				}
				vt = ft
			}
			if err := walkValue(dec, vt, name); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// skipValue reads one value from dec unchecked.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// jsonFields adds the JSON names of struct type t's fields, as encoding/json
// sees them (tag name, else the Go name; "-" skipped; untagged embedded
// structs flattened), with their types.
func jsonFields(t reflect.Type, out map[string]reflect.Type) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	// promoted fields: a shallower field of the same name wins, as in encoding/json
	for _, et := range embedded {
		inner := map[string]reflect.Type{}
		jsonFields(et, inner)
		for name, ft := range inner {
			if _, ok := out[name]; !ok {
				out[name] = ft
			}
		}
	}
}
