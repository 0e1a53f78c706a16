// Package tables is the public contract of the tables that sweetspot's
// stages pass one another: requirements, candidates, results, decisions
// and models (each trial's model file, with its format and digest). Each
// table's column names, Arrow types and nullability are declared here
// once, with a typed row, a builder and a reader, so that
// the built-in stages, the host (runs show, runs export, the report) and
// third-party plugins read and write the same columns.
//
// A reader accepts a batch holding at least the table's columns, with
// their types; other columns are ignored, so a stage may add its own
// (replay's replay_source, say) and downstream readers still work. A
// reader names every missing or mistyped column at once.
//
// docs/tables.md describes every column.
package tables
