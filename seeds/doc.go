// Package seeds holds the demo data set for a fictional county (Qingshan
// County, 青山县, in the hills around 31.5°N 107.0°E, WGS84): responsibility
// zones, forest compartments, known static heat sources and a device registry.
// It is data only; the Go test here checks that the files agree with each
// other, because every other package's demo and integration tests load them.
package seeds
