// Package query is the HTTP transport of loopmatch, and only that: Gin routes over the
// recommend engine, one request toolkit that every handler reads its body through
// (media type, bounded body, strict JSON, one multipart reader with per-part limits),
// OpenAPI validation of the hand-written contract, RFC 9457 problem details, API keys
// and rate limits, metrics, the preview cache and the embedded web page. It never
// imports the write side: uploads reach ingest through the Ingester interface, which
// the command wires.
package query
