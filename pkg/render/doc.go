// Package render computes, from a Gateway and its customizations, the whole desired state of
// the resources behind it: a pure function with no API calls, tested with golden files.
// A nil object in the result means that object must not exist.
package render
