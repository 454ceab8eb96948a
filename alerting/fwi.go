package alerting

import (
	"fmt"
	"math"

	"github.com/lookoutfire/lookout/errs"
)

// This file holds the Canadian Forest Fire Weather Index (FWI) System, written
// from the equations of Van Wagner & Pickett (1985, Forestry Technical Report 33)
// and Van Wagner (1987, FTR 35), with the conventions of the reference R package
// cffdrs (function fwi): relative humidity capped below 100, temperature floors
// of -1.1 °C (DMC) and -2.8 °C (DC), and latitude-dependent day-length factors
// after Lawson & Armitage (2008). The tests replay the cffdrs test_fwi dataset.

// ErrBadWeather marks a weather observation the FWI equations cannot take
// (negative rain, wind or humidity, month out of range, NaN).
var ErrBadWeather = fmt.Errorf("fwi weather %w", errs.ErrInvalid)

// Weather is one daily noon observation in the units the FWI System expects.
type Weather struct {
	Month int     // 1..12
	Temp  float64 // °C at noon local standard time
	RH    float64 // % at noon
	Wind  float64 // km/h at 10 m (NOT m/s)
	Rain  float64 // mm over the previous 24 h
	Lat   float64 // degrees north (negative south): picks the day-length factors
}

// Codes are the three moisture codes carried from one day to the next.
type Codes struct {
	FFMC float64 `json:"ffmc"`
	DMC  float64 `json:"dmc"`
	DC   float64 `json:"dc"`
}

// StartupCodes are the standard spring start-up values (85, 6, 15).
var StartupCodes = Codes{FFMC: 85, DMC: 6, DC: 15}

// Indices is one day's full FWI System output.
type Indices struct {
	Codes
	ISI float64 `json:"isi"`
	BUI float64 `json:"bui"`
	FWI float64 `json:"fwi"`
	DSR float64 `json:"dsr"`
}

// Validate rejects inputs outside what the equations accept.
func (w Weather) Validate() error {
	for _, v := range []float64{w.Temp, w.RH, w.Wind, w.Rain, w.Lat} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: not a finite number", ErrBadWeather)
		}
	}
	switch {
	case w.Month < 1 || w.Month > 12:
		return fmt.Errorf("%w: month %d not in 1..12", ErrBadWeather, w.Month)
	case w.RH < 0:
		return fmt.Errorf("%w: rh %.1f < 0", ErrBadWeather, w.RH)
	case w.Wind < 0:
		return fmt.Errorf("%w: wind %.1f < 0", ErrBadWeather, w.Wind)
	case w.Rain < 0:
		return fmt.Errorf("%w: rain %.1f < 0", ErrBadWeather, w.Rain)
	case w.Lat < -90 || w.Lat > 90:
		return fmt.Errorf("%w: latitude %.2f not in -90..90", ErrBadWeather, w.Lat)
	}
	return nil
}

// Step computes one day from yesterday's codes and today's noon weather.
func Step(prev Codes, w Weather) (Indices, error) {
	if err := w.Validate(); err != nil {
		return Indices{}, err
	}
	if w.RH >= 100 {
		w.RH = 99.9999
	}
	var out Indices
	out.FFMC = FFMC(prev.FFMC, w.Temp, w.RH, w.Wind, w.Rain)
	out.DMC = DMC(prev.DMC, w.Temp, w.RH, w.Rain, w.Lat, w.Month)
	out.DC = DC(prev.DC, w.Temp, w.Rain, w.Lat, w.Month)
	out.ISI = ISI(out.FFMC, w.Wind)
	out.BUI = BUI(out.DMC, out.DC)
	out.FWI = FWI(out.ISI, out.BUI)
	out.DSR = DSR(out.FWI)
	return out, nil
}

// ffmcCoeff is 250·59.5/101 (≈147.27723), the constant of eqs. 1 and 10 as cffdrs
// uses it: Van Wagner & Pickett (1985) printed it rounded to 147.2, which makes
// the two equations not quite inverse (FFMC drifts by up to ~0.05 per day).
const ffmcCoeff = 250.0 * 59.5 / 101.0

// ffmcMoisture converts FFMC to fine fuel moisture content (%), eq. 1.
func ffmcMoisture(ffmc float64) float64 { return ffmcCoeff * (101 - ffmc) / (59.5 + ffmc) }

// FFMC is the Fine Fuel Moisture Code (eqs. 1–10).
func FFMC(prev, temp, rh, wind, rain float64) float64 {
	mo := ffmcMoisture(prev)
	if rain > 0.5 {
		rf := rain - 0.5 // eq. 2: canopy interception
		add := 42.5 * rf * math.Exp(-100/(251-mo)) * (1 - math.Exp(-6.93/rf))
		if mo > 150 { // eq. 3b
			add += 0.0015 * (mo - 150) * (mo - 150) * math.Sqrt(rf)
		}
		mo += add
		if mo > 250 {
			mo = 250
		}
	}
	tf := 0.18 * (21.1 - temp) * (1 - math.Exp(-0.115*rh))
	ed := 0.942*math.Pow(rh, 0.679) + 11*math.Exp((rh-100)/10) + tf // eq. 4: drying EMC
	ew := 0.618*math.Pow(rh, 0.753) + 10*math.Exp((rh-100)/10) + tf // eq. 5: wetting EMC
	m := mo
	switch {
	case mo > ed: // drying, eqs. 6a, 6b, 8
		k0 := 0.424*(1-math.Pow(rh/100, 1.7)) + 0.0694*math.Sqrt(wind)*(1-math.Pow(rh/100, 8))
		kd := k0 * 0.581 * math.Exp(0.0365*temp)
		m = ed + (mo-ed)/math.Pow(10, kd)
	case mo < ed && mo < ew: // wetting, eqs. 7a, 7b, 9
		k1 := 0.424*(1-math.Pow((100-rh)/100, 1.7)) + 0.0694*math.Sqrt(wind)*(1-math.Pow((100-rh)/100, 8))
		kw := k1 * 0.581 * math.Exp(0.0365*temp)
		m = ew - (ew-mo)/math.Pow(10, kw)
	}
	f := 59.5 * (250 - m) / (ffmcCoeff + m) // eq. 10
	return clamp(f, 0, 101)
}

// dmcDayLength holds the effective day-length factors Le for the DMC by latitude
// band (Van Wagner 1987 for ≥ 30°N; Lawson & Armitage 2008 for the others).
var dmcDayLength = [4][12]float64{
	{6.5, 7.5, 9, 12.8, 13.9, 13.9, 12.4, 10.9, 9.4, 8, 7, 6},       // lat > 30
	{7.9, 8.4, 8.9, 9.5, 9.9, 10.2, 10.1, 9.7, 9.1, 8.6, 8.1, 7.8},  // 10 < lat ≤ 30
	{10.1, 9.6, 9.1, 8.5, 8.1, 7.8, 7.9, 8.3, 8.9, 9.4, 9.9, 10.2},  // -30 < lat ≤ -10
	{11.5, 10.5, 9.2, 7.9, 6.8, 6.2, 6.5, 7.4, 8.7, 10, 11.2, 11.8}, // lat ≤ -30
}

func dmcLe(lat float64, month int) float64 {
	switch {
	case lat > 30:
		return dmcDayLength[0][month-1]
	case lat > 10:
		return dmcDayLength[1][month-1]
	case lat > -10:
		return 9 // near the equator
	case lat > -30:
		return dmcDayLength[2][month-1]
	default:
		return dmcDayLength[3][month-1]
	}
}

// DMC is the Duff Moisture Code (eqs. 11–17).
func DMC(prev, temp, rh, rain, lat float64, month int) float64 {
	if temp < -1.1 {
		temp = -1.1
	}
	rk := 1.894 * (temp + 1.1) * (100 - rh) * dmcLe(lat, month) * 1e-4 // eq. 16
	pr := prev
	if rain > 1.5 {
		re := 0.92*rain - 1.27              // eq. 11
		mo := 20 + 280/math.Exp(0.023*prev) // eq. 12
		var b float64                       // eqs. 13a–c
		switch {
		case prev <= 33:
			b = 100 / (0.5 + 0.3*prev)
		case prev <= 65:
			b = 14 - 1.3*math.Log(prev)
		default:
			b = 6.2*math.Log(prev) - 17.2
		}
		mr := mo + 1000*re/(48.77+b*re)         // eq. 14
		pr = 43.43 * (5.6348 - math.Log(mr-20)) // eq. 15
		if pr < 0 {
			pr = 0
		}
	}
	return math.Max(pr+rk, 0)
}

// dcDayLength holds the day-length adjustment Lf for the DC.
var dcDayLength = [2][12]float64{
	{-1.6, -1.6, -1.6, 0.9, 3.8, 5.8, 6.4, 5, 2.4, 0.4, -1.6, -1.6}, // lat > 20
	{6.4, 5, 2.4, 0.4, -1.6, -1.6, -1.6, -1.6, -1.6, 0.9, 3.8, 5.8}, // lat ≤ -20
}

func dcLf(lat float64, month int) float64 {
	switch {
	case lat > 20:
		return dcDayLength[0][month-1]
	case lat > -20:
		return 1.4
	default:
		return dcDayLength[1][month-1]
	}
}

// DC is the Drought Code (eqs. 18–23).
func DC(prev, temp, rain, lat float64, month int) float64 {
	if temp < -2.8 {
		temp = -2.8
	}
	pe := math.Max((0.36*(temp+2.8)+dcLf(lat, month))/2, 0) // eq. 22
	dr := prev
	if rain > 2.8 {
		rd := 0.83*rain - 1.27                  // eq. 18
		qo := 800 * math.Exp(-prev/400)         // eq. 19
		dr = prev - 400*math.Log(1+3.937*rd/qo) // eqs. 20–21
		if dr < 0 {
			dr = 0
		}
	}
	return math.Max(dr+pe, 0)
}

// ISI is the Initial Spread Index (eqs. 24–26); wind in km/h.
func ISI(ffmc, wind float64) float64 {
	m := ffmcMoisture(ffmc)
	fw := math.Exp(0.05039 * wind)
	ff := 91.9 * math.Exp(-0.1386*m) * (1 + math.Pow(m, 5.31)/4.93e7)
	return 0.208 * fw * ff
}

// BUI is the Buildup Index (eqs. 27a, 27b).
func BUI(dmc, dc float64) float64 {
	if dmc == 0 && dc == 0 {
		return 0
	}
	u := 0.8 * dc * dmc / (dmc + 0.4*dc)
	if u < dmc {
		p := (dmc - u) / dmc
		cc := 0.92 + math.Pow(0.0114*dmc, 1.7)
		u = math.Max(dmc-cc*p, 0)
	}
	return u
}

// FWI is the Fire Weather Index (eqs. 28–30).
func FWI(isi, bui float64) float64 {
	var fd float64
	if bui > 80 {
		fd = 1000 / (25 + 108.64/math.Exp(0.023*bui))
	} else {
		fd = 0.626*math.Pow(bui, 0.809) + 2
	}
	b := 0.1 * isi * fd
	if b <= 1 {
		return b
	}
	return math.Exp(2.72 * math.Pow(0.434*math.Log(b), 0.647))
}

// DSR is the Daily Severity Rating (eq. 31).
func DSR(fwi float64) float64 { return 0.0272 * math.Pow(fwi, 1.77) }

func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }

// Level is one of China's five fire-danger weather levels (QX/T 77-2007).
type Level int

// LevelNames are the Chinese name, meaning and colour of each level (index = level).
var levelNames = [6]struct{ Name, Meaning, Colour string }{
	{},
	{"一级", "低", "green"},
	{"二级", "较低", "blue"},
	{"三级", "较高", "yellow"},
	{"四级", "高", "orange"},
	{"五级", "极高", "red"},
}

// Name returns e.g. "四级 高 (orange)".
func (l Level) Name() string {
	if l < 1 || l > 5 {
		return fmt.Sprintf("level %d", int(l))
	}
	n := levelNames[l]
	return fmt.Sprintf("%s %s (%s)", n.Name, n.Meaning, n.Colour)
}

// Colour returns the level's warning colour.
func (l Level) Colour() string {
	if l < 1 || l > 5 {
		return ""
	}
	return levelNames[l].Colour
}

// LevelFor maps an FWI value to a level with the four ascending breakpoints: FWI
// below bp[0] is level 1, at or above bp[3] level 5.
func LevelFor(fwi float64, bp []float64) Level {
	l := Level(1)
	for _, b := range bp {
		if fwi >= b {
			l++
		}
	}
	return l
}
