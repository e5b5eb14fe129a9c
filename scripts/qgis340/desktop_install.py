"""The README's install without a terminal, on this QGIS: the forge's "Download ZIP" (written by qgis340.sh as
tests/desktop_install.py --forge-archive does) installed by QGIS's own Install from ZIP into a fresh profile of
desktop QGIS on Xvfb, then QGIS started again. Exit 0 when the plugin is active both times, its algorithms are
registered and hsigan:check runs; 1 with the report when not. No torch needed.
  python3 scripts/qgis340/desktop_install.py ARCHIVE.zip WORK_DIR"""
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import desktop_install  # noqa: E402

ALGORITHMS = 8  # hsigan:assess augment check classify export_onnx install_torch train train_samples


def main(archive, work):
    folder = desktop_install.FORGE_PREFIX.rstrip("/")
    shutil.rmtree(work, ignore_errors=True)  # a fresh profile and HOME each run
    report = desktop_install.install(archive, work)
    failed = False
    for step in ("install", "restart"):
        run = report[step]
        ok = (run["exit_code"] == 0 and "error" not in run and not run["dialogs"] and not run["python_errors"]
              and run.get("folder") == folder and run.get("enabled_setting") is True
              and len(run.get("algorithms", [])) == ALGORITHMS and run.get("check", {}).get("DEVICE") == "none"
              and run.get("top_level_parts") == [])
        print(f"{step}: {'ok' if ok else 'FAILED'}: folder={run.get('folder')} algorithms={len(run.get('algorithms', []))} "
              f"check={run.get('check', {}).get('DEVICE')}")
        failed |= not ok
    failed |= folder in report["install"]["active_at_start"] or folder not in report["restart"]["active_at_start"]
    if failed:
        print(json.dumps(report, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
