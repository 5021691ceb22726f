"""Print one closing line, 'total: N passed, N failed, N skipped', over every test runner's results.

Reads pytest JUnit XML files and the molecule scenario counts written by each run of scripts/molecule.sh.
Each failed or errored test case is named above the total with the first line of its message, so the
tail of a CI log (often all that is kept) says which test failed, not only that one did.
"""
import pathlib
import sys
import xml.etree.ElementTree as ET


def _failures(root):
    for case in root.iter("testcase"):
        for kind in ("failure", "error"):
            bad = case.find(kind)
            if bad is not None:
                message = (bad.get("message") or bad.text or "").strip().splitlines()
                yield f"{case.get('classname', '')}::{case.get('name', '')}", kind, (message[0] if message else "")[:500]


def main(report_dir: str) -> int:
    passed = failed = skipped = 0
    for xml in sorted(pathlib.Path(report_dir).glob("*.xml")):
        root = ET.parse(xml).getroot()
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            passed += tests - bad - skip
            failed += bad
            skipped += skip
        for name, kind, message in _failures(root):
            print(f"{kind.upper()} [{xml.stem}] {name}: {message}")
    for counts in sorted(pathlib.Path(report_dir).glob("molecule*.counts")):  # one file per scripts/molecule.sh run
        ran, bad, skip = (int(x) for x in counts.read_text().split())
        passed, failed, skipped = passed + ran, failed + bad, skipped + skip
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".build/reports"))
