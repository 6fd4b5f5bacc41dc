//! `crdgen`: prints the ToyStore and ToyStoreBackup CustomResourceDefinitions as one YAML stream
//! (`crds/toystore.yaml`; the test `UPDATE_CRD=1 cargo test -p operator --test crd` rewrites it
//! and its copies).

fn main() {
    print!("{}", operator::crdgen::yaml());
}
