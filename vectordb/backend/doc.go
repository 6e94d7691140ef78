// Package backend parses a --store value (Parse, the one place that does) and opens the
// vectordb.Store it names. It lives apart from vectordb because it imports both
// backends, and they import vectordb.
package backend
