//! `crdgen`: prints the ToyStore CustomResourceDefinition as YAML (`crds/toystore.yaml`).

fn main() {
    print!("{}", operator::crdgen::yaml());
}
