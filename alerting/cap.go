package alerting

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// CAP 1.2 (OASIS) lets public warning systems take our alerts without custom
// integration. CAPTime is the one `sent` format CAP accepts: seconds, a numeric
// offset, no "Z" and no fractions.

// CAPNamespace is the CAP 1.2 XML namespace.
const CAPNamespace = "urn:oasis:names:tc:emergency:cap:1.2"

// CAPTime formats t as CAP's dateTime in loc, e.g. 2024-05-01T14:03:07+08:00.
func CAPTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Truncate(time.Second).Format("2006-01-02T15:04:05-07:00")
}

// CAPAlert is the <alert> element.
type CAPAlert struct {
	XMLName    xml.Name `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier string   `xml:"identifier"`
	Sender     string   `xml:"sender"`
	Sent       string   `xml:"sent"`
	Status     string   `xml:"status"`
	MsgType    string   `xml:"msgType"`
	Scope      string   `xml:"scope"`
	References string   `xml:"references,omitempty"`
	Info       CAPInfo  `xml:"info"`
}

// CAPInfo is the <info> element.
type CAPInfo struct {
	Language    string     `xml:"language"`
	Category    string     `xml:"category"`
	Event       string     `xml:"event"`
	Urgency     string     `xml:"urgency"`
	Severity    string     `xml:"severity"`
	Certainty   string     `xml:"certainty"`
	Effective   string     `xml:"effective,omitempty"`
	SenderName  string     `xml:"senderName,omitempty"`
	Headline    string     `xml:"headline,omitempty"`
	Description string     `xml:"description,omitempty"`
	Parameters  []CAPParam `xml:"parameter,omitempty"`
	Area        CAPArea    `xml:"area"`
}

// CAPParam is a <parameter> name/value pair.
type CAPParam struct {
	ValueName string `xml:"valueName"`
	Value     string `xml:"value"`
}

// CAPArea is the <area> element.
type CAPArea struct {
	AreaDesc string   `xml:"areaDesc"`
	Polygon  []string `xml:"polygon,omitempty"`
	Circle   []string `xml:"circle,omitempty"`
}

func capSeverity(s Severity) (urgency, severity string) {
	switch s {
	case Critical:
		return "Immediate", "Extreme"
	case Major:
		return "Expected", "Severe"
	case Minor:
		return "Future", "Moderate"
	default:
		return "Future", "Minor"
	}
}

func capCertainty(typ string) string {
	switch {
	case typ == TypeSmokeAlarm, typ == TypeArcFault, strings.HasPrefix(typ, TypeCameraFire), typ == TypeOffline:
		return "Observed"
	case typ == TypeFireDanger:
		return "Likely"
	}
	return "Possible"
}

// CAPIdentifier is the stable CAP identifier of an alert.
func (e *Engine) CAPIdentifier(id int64) string {
	host := e.cfg.Notify.CAPSender
	if _, h, ok := strings.Cut(host, "@"); ok {
		host = h
	}
	return fmt.Sprintf("%s-lookout-alert-%d", host, id)
}

// CAP builds the CAP 1.2 document of an alert: msgType Alert while active,
// Cancel once cleared; area is the zone name (from the Directory) with a circle
// around the alert position when it has one.
func (e *Engine) CAP(a Alert) CAPAlert {
	urg, sev := capSeverity(a.Severity)
	msgType, sent := "Alert", a.FirstSeen
	var refs string
	if !a.Active() {
		msgType = "Cancel"
		if a.ClearedAt != nil {
			sent = *a.ClearedAt
		}
		refs = fmt.Sprintf("%s,%s,%s", e.cfg.Notify.CAPSender, e.CAPIdentifier(a.ID), CAPTime(a.FirstSeen, e.capTZ))
	}
	id := e.CAPIdentifier(a.ID)
	if msgType == "Cancel" {
		id += "-cancel"
	}
	areaDesc := a.Zone
	if path := e.zonePath(a.Zone); len(path) > 0 {
		names := make([]string, 0, len(path))
		for i := len(path) - 1; i >= 0; i-- {
			names = append(names, path[i].Name)
		}
		areaDesc = strings.Join(names, " ")
	}
	if areaDesc == "" {
		areaDesc = "unknown area (source " + a.Source + ")"
	}
	area := CAPArea{AreaDesc: areaDesc}
	if a.Lat != 0 || a.Lon != 0 {
		r := e.cfg.Notify.CAPRadiusKM
		if f, ok := a.Details["fix"].(map[string]any); ok {
			if em, ok := f["error_m"].(float64); ok && em/1000 > r {
				r = em / 1000
			}
		}
		area.Circle = []string{fmt.Sprintf("%.6f,%.6f %.3f", a.Lat, a.Lon, r)}
	}
	params := []CAPParam{{"source", a.Source}, {"alertType", a.Type}, {"count", fmt.Sprint(a.Count)}}
	if a.Forest != "" {
		params = append(params, CAPParam{"forest", a.Forest})
	}
	return CAPAlert{
		Identifier: id, Sender: e.cfg.Notify.CAPSender, Sent: CAPTime(sent, e.capTZ),
		Status: e.cfg.Notify.CAPStatus, MsgType: msgType, Scope: e.cfg.Notify.CAPScope, References: refs,
		Info: CAPInfo{Language: "zh-CN", Category: "Fire", Event: eventName(a.Type), Urgency: urg, Severity: sev,
			Certainty: capCertainty(a.Type), Effective: CAPTime(a.FirstSeen, e.capTZ), SenderName: "Lookout",
			Headline: a.Message, Description: a.Message, Parameters: params, Area: area},
	}
}

func eventName(typ string) string {
	switch {
	case typ == TypeSmokeAlarm:
		return "Smoke alarm"
	case strings.HasPrefix(typ, TypeCameraFire):
		return "Wildfire smoke sighted"
	case typ == TypeFireDanger:
		return "Fire danger"
	case typ == TypeArcFault, typ == TypeResidual, typ == TypeCableTemp, typ == TypeElecAlarm:
		return "Electrical fire risk"
	case typ == TypeOffline:
		return "Monitoring device offline"
	}
	return typ
}

// MarshalCAP encodes a CAP document with the XML header.
func MarshalCAP(c CAPAlert) ([]byte, error) {
	b, err := xml.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("alerting: cap: %w", err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

// atomFeed is a minimal Atom 1.0 feed of CAP alerts (the usual CAP index format).
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomAuthor  `xml:"author"`
	Link    atomLink    `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
}

type atomEntry struct {
	ID      string   `xml:"id"`
	Title   string   `xml:"title"`
	Updated string   `xml:"updated"`
	Summary string   `xml:"summary"`
	Link    atomLink `xml:"link"`
}
