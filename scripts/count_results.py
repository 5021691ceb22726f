"""Print one closing line, 'total: N passed, N failed, N skipped', over every test runner's results.

Reads pytest JUnit XML files and the molecule scenario counts written by each run of scripts/molecule.sh.
"""
import pathlib
import sys
import xml.etree.ElementTree as ET


def main(report_dir: str) -> int:
    passed = failed = skipped = 0
    for xml in sorted(pathlib.Path(report_dir).glob("*.xml")):
        for suite in ET.parse(xml).getroot().iter("testsuite"):
            tests = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            passed += tests - bad - skip
            failed += bad
            skipped += skip
    for counts in sorted(pathlib.Path(report_dir).glob("molecule*.counts")):  # one file per scripts/molecule.sh run
        ran, bad, skip = (int(x) for x in counts.read_text().split())
        passed, failed, skipped = passed + ran, failed + bad, skipped + skip
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".build/reports"))
