"""Validates the Kustomize tree without kustomize: every kustomization names files that
exist (and generators it merges into exist in what it builds on), and every other manifest
is valid against the Kubernetes schemas (kubernetes-validate, strict)."""

import pathlib
import subprocess
import sys

import yaml

K8S_VERSION = "1.33.0"


def generators(kdir: pathlib.Path) -> set:
    """Names of the ConfigMap generators a kustomization and its bases define."""
    k = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    names = {g["name"] for g in k.get("configMapGenerator", []) if g.get("behavior", "create") == "create"}
    for res in k.get("resources", []):
        path = (kdir / res).resolve()
        if path.is_dir():
            names |= generators(path)
    return names


def check_kustomization(kdir: pathlib.Path) -> list:
    errors = []
    k = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    for res in k.get("resources", []):
        path = (kdir / res).resolve()
        if path.is_dir():
            if not (path / "kustomization.yaml").exists():
                errors.append(f"{kdir}: {res} is a directory without a kustomization.yaml")
        elif not path.is_file():
            errors.append(f"{kdir}: {res} does not exist")
    inherited = set()
    for res in k.get("resources", []):
        path = (kdir / res).resolve()
        if path.is_dir():
            inherited |= generators(path)
    for g in k.get("configMapGenerator", []):
        if g.get("behavior") == "merge" and g["name"] not in inherited:
            errors.append(f"{kdir}: merges into ConfigMap {g['name']}, which no base generates")
    return errors


def main(root: str) -> int:
    root_path = pathlib.Path(root)
    errors = []
    manifests = []
    for kfile in sorted(root_path.rglob("kustomization.yaml")):
        errors += check_kustomization(kfile.parent)
    for path in sorted(root_path.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            manifests.append(str(path))
    result = subprocess.run(
        ["kubernetes-validate", "--strict", "--quiet", "-k", K8S_VERSION, *manifests],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        errors.append(result.stdout + result.stderr)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"{len(manifests)} manifests, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
