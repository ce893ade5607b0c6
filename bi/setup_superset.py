"""Set up Superset for `make bi`: the admin login, and the dashboard kept as code in bi/superset/.

The database file in bi/superset/databases/ names no path (the snapshot's place differs per
machine): the bundle zipped here gets the read-only DuckDB URI of the snapshot at SERVING_PATH.
The import goes through Superset's asset import, which overwrites the database, datasets, charts
and dashboard of the same UUIDs, so an edited YAML file or a moved snapshot takes effect on the
next `make bi` (Superset's dashboard import keeps existing charts and connections as they were).

Run by bi/run.sh with Superset's own interpreter (.bi-venv) and SUPERSET_CONFIG_PATH set, after
`superset db upgrade` and `superset init`. The password comes from BI_ADMIN_PASSWORD in the
environment, never from the command line.
"""

import argparse
import os
import zipfile
from pathlib import Path

import yaml

SOURCE = Path(__file__).resolve().parent / "superset"
# The folder every file sits under inside the zip, as in Superset's own exports.
ROOT_IN_ZIP = "marketing_dashboard"


def snapshot_uri(serving_path: Path) -> str:
    """duckdb-engine's URI for the snapshot, opened read-only (four slashes: an absolute path)."""
    return f"duckdb:///{serving_path.resolve()}?access_mode=read_only"


def build_bundle(serving_path: Path, out: Path) -> None:
    """Write the bundle zip to `out` (kept in BI_HOME: what the last start imported)."""
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


def set_up(bundle_path: Path, username: str, password: str) -> None:
    """Create `username` as Admin (or set its password), then import the bundle as that user."""
    from flask import g
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        # Superset's models can only be imported once the app exists.
        from superset import security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.commands.importers.v1.utils import get_contents_from_bundle

        user = security_manager.find_user(username=username)
        if user is None:
            admin = security_manager.find_role(security_manager.auth_role_admin)
            user = security_manager.add_user(
                username, "Admin", "User", f"{username}@localhost", admin, password=password
            )
            if not user:
                raise SystemExit(f"bi/setup_superset.py: could not create the Superset user {username!r}")
        else:
            security_manager.reset_password(user.id, password)
        g.user = user
        with zipfile.ZipFile(bundle_path) as bundle:
            contents = get_contents_from_bundle(bundle)
        ImportAssetsCommand(contents).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serving-path", type=Path, required=True)
    parser.add_argument("--bundle", type=Path, required=True, help="where to write the dashboard zip")
    parser.add_argument("--username", required=True)
    args = parser.parse_args()
    password = os.environ.get("BI_ADMIN_PASSWORD", "")
    if not password:
        raise SystemExit("bi/setup_superset.py: BI_ADMIN_PASSWORD is empty; set the admin's password")
    build_bundle(args.serving_path, args.bundle)
    set_up(args.bundle, args.username, password)


if __name__ == "__main__":
    main()
