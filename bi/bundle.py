"""Zip the dashboard kept as code in bi/superset/ and import it into Superset, replacing the last import.

The database file in bi/superset/databases/ names no path (the snapshot's place differs per
machine): the bundle gets the read-only DuckDB URI of the snapshot at SERVING_PATH. The import
goes through Superset's asset import, which overwrites the database, datasets, charts and
dashboard of the same UUIDs, so an edited YAML file or a moved snapshot takes effect on the next
`make bi` (Superset's dashboard import would keep the existing charts and connection as they were).

Run by bi/run.sh with Superset's own interpreter (.bi-venv) and SUPERSET_CONFIG_PATH set.
"""

import argparse
import zipfile
from pathlib import Path

import yaml

SOURCE = Path(__file__).resolve().parent / "superset"
# The folder every file sits under inside the zip, as in Superset's own exports.
ROOT_IN_ZIP = "marketing_dashboard"


def snapshot_uri(serving_path: Path) -> str:
    """duckdb-engine's URI for the snapshot, opened read-only (four slashes: an absolute path)."""
    return f"duckdb:///{serving_path.resolve()}?access_mode=read_only"


def build(serving_path: Path, out: Path) -> None:
    """Write the bundle zip (also importable by hand in Superset's UI) to `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(SOURCE.rglob("*.yaml")):
            text = path.read_text()
            relative = path.relative_to(SOURCE)
            if relative.parts[0] == "databases":
                config = yaml.safe_load(text)
                config["sqlalchemy_uri"] = snapshot_uri(serving_path)
                text = yaml.safe_dump(config, sort_keys=False)
            bundle.writestr(f"{ROOT_IN_ZIP}/{relative.as_posix()}", text)


def import_bundle(bundle_path: Path, username: str) -> None:
    """Import the bundle as `username` (the owner of what it creates)."""
    from flask import g
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        # Superset's models can only be imported once the app exists.
        from superset import security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.commands.importers.v1.utils import get_contents_from_bundle

        g.user = security_manager.find_user(username=username)
        if g.user is None:
            raise SystemExit(f"bi/bundle.py: no Superset user {username!r} to import the dashboard as")
        with zipfile.ZipFile(bundle_path) as bundle:
            contents = get_contents_from_bundle(bundle)
        ImportAssetsCommand(contents).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serving-path", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--import-as", metavar="USER", help="also import the bundle into Superset as USER")
    args = parser.parse_args()
    build(args.serving_path, args.out)
    if args.import_as:
        import_bundle(args.out, args.import_as)


if __name__ == "__main__":
    main()
