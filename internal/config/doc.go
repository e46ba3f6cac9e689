// Package config holds reachd's configuration: the types, a strict YAML decoder
// that reports unknown keys, and validation whose errors name the file, line and
// key and say what to do.
//
// Timing keys keep the names of the SD-WAN plugin document
// (shared/seeds/000): probe-interval, number-of-retries, retry-interval,
// hold-down, vector-priority, best-effort, with that document's defaults.
package config
