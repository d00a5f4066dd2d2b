//! `codeyard export terraform` and its round trip: apply the seed topology, export it, apply the export to a fresh server, plan shows no changes.
