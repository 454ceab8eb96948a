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

// jsonFields adds the JSON names of struct type t's fields with their types,
// as encoding/json resolves them: tag name, else the Go name; "-" skipped;
// untagged embedded structs promote their fields, a shallower field hiding
// deeper ones of the same name, and of several at one depth a tagged one
// wins, else none does (encoding/json then ignores the name).
func jsonFields(t reflect.Type, out map[string]reflect.Type) {
	type cand struct {
		typ    reflect.Type
		tagged bool
		n      int // fields of this name and taggedness at this depth
	}
	decided := map[string]bool{} // names settled at a shallower depth
	visited := map[reflect.Type]bool{}
	for level := []reflect.Type{t}; len(level) > 0; {
		var next []reflect.Type
		here := map[string]*cand{}
		for _, st := range level {
			if visited[st] {
				continue
			}
			visited[st] = true
			for i := range st.NumField() {
				f := st.Field(i)
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
						next = append(next, ft)
						continue
					}
				}
				if !f.IsExported() {
					continue
				}
				tagged := name != ""
				if !tagged {
					name = f.Name
				}
				switch c := here[name]; {
				case c == nil:
					here[name] = &cand{f.Type, tagged, 1}
				case tagged && !c.tagged:
					*c = cand{f.Type, true, 1}
				case tagged == c.tagged:
					c.n++
				}
			}
		}
		for name, c := range here {
			if decided[name] {
				continue
			}
			decided[name] = true
			if c.n == 1 {
				out[name] = c.typ
			}
		}
		level = next
	}
}
