//! The service's modules import no loop (issue 20): the layering of docs/architecture.md
//! ("Layers"), checked by `.ci/modules-acyclic`, which reads the source. Here because the test
//! command (`.ci/test`) is what every change runs; `.ci/run` also runs it before the build.

use std::path::Path;
use std::process::Command;

fn checker(arg: Option<&str>) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/modules-acyclic");
    let mut command = Command::new("python3");
    command.arg(&script);
    if let Some(arg) = arg {
        command.arg(arg);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("python3 {}: {e}", script.display()))
}

fn assert_passes(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The checker tells a loop from none on fixture trees (a nested `use` tree and an inline
/// path each close a loop; comments, strings and test code do not).
#[test]
fn the_module_checker_finds_a_loop_and_passes_a_tree_without_one() {
    assert_passes(&checker(Some("--self-test")));
}

/// No top-level module of the service imports, directly or through others, one that imports it.
#[test]
fn no_import_loop_between_the_service_modules() {
    assert_passes(&checker(None));
}

/// Nor does any module at any depth: inside a feature folder the children import no loop
/// either (a parent declaring and routing its children is not counted).
#[test]
fn no_import_loop_between_modules_at_any_depth() {
    assert_passes(&checker(Some("--all")));
}
