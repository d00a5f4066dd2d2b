//! Generates `codeyard_api`'s per-model modules into `OUT_DIR` (crates/codegen), so they are
//! never committed and never stale: the build reruns when a model, the generator's data or the
//! generator changes (a change to the generator crate also rebuilds this script).

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    for input in ["models", "crates/codegen/data/service-authorization", "crates/codegen/src"] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    println!("cargo:rerun-if-changed=build.rs");
    codeyard_codegen::write(&root, &out).expect("writing the generated modules");
}
