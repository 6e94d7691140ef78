// Package recommend is the recommendation engine, free of HTTP: it answers "which loops
// of instrument B fit this loop of instrument A?" by mapping a seed's latent through
// the bundle's mapper and searching the target collection (with an optional MMR
// diversity re-rank), and it makes latents for the bundle's decoders: the mapped
// best-guess loop, a mix of two loops (interpolation) and one instrument's loop through
// another's decoder (transfer). The HTTP server (query), eval and the CLI all call the
// Engine, so every path runs the same steps.
package recommend
