//! `sqlx::migrate!` embeds `migrations/` at compile time; without this, a new or edited
//! migration alone would not rebuild the crate, and a binary would run without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
