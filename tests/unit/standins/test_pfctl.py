"""The pfctl stand-in's pf.conf parser (tests/standins/bin/pfctl) against the files the hardening role writes.

The role's own anchor template (roles/hardening/templates/ollama.pf.j2) and its /etc/pf.conf block
(roles/hardening/tasks/ollama_macos.yml) are rendered by ansible-core's `template` and `blockinfile` modules with the
role's `validate: pfctl -nf %s`, exactly as on a Mac; mutated copies of the template must be refused with pfctl's
`<file>:<line>: <message>` and leave no file behind. The expected verdicts come from pfctl's grammar: FreeBSD src
r274417 sbin/pfctl/parse.y ($OpenBSD: parse.y,v 1.554) and share/man/man5/pf.conf.5 GRAMMAR, cited per case.

Each mutation also runs against the stand-in as it was before this parser (first keyword + balanced braces only,
commit 7f6e271), the "gap" configuration: the mutations it let through are marked, so the suite shows that the
refusals come from the parser and that these checks can fail.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
STANDINS = ROOT / "tests" / "standins"
TEMPLATE = ROOT / "roles" / "hardening" / "templates" / "ollama.pf.j2"
TASKS = yaml.safe_load((ROOT / "roles" / "hardening" / "tasks" / "ollama_macos.yml").read_text())
GAP_COMMIT = "7f6e271"

if os.getuid() != 0:
    pytest.skip("pfctl (and its stand-in) needs root: run as root", allow_module_level=True)

# macOS's stock /etc/pf.conf (the com.apple anchors; the load path is rewritten to a file of the test).
APPLE_PF_CONF = """\
scrub-anchor "com.apple/*"
nat-anchor "com.apple/*"
rdr-anchor "com.apple/*"
dummynet-anchor "com.apple/*"
anchor "com.apple/*"
load anchor "com.apple" from "{apple}"
"""
APPLE_ANCHOR = 'scrub-anchor "100.InternetSharing/*"\nanchor "200.AirDrop/*"\nanchor "250.ApplicationFirewall/*"\n'


def _task(name: str) -> dict:
    return next(t for t in TASKS if t["name"] == name)


class Pf:
    """The stand-in on PATH with its own state directory."""

    def __init__(self, base: Path, bin_dir: Path):
        self.base, self.state = base, base / "state"
        self.state.mkdir(exist_ok=True)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "AGENTSEC_STANDIN_DIR": str(self.state)}

    def run(self, *argv) -> subprocess.CompletedProcess:
        return subprocess.run(["pfctl", *map(str, argv)], env=self.env, capture_output=True, text=True, check=False,
                              timeout=30)


@pytest.fixture
def pf(tmp_path):
    return Pf(tmp_path, STANDINS / "bin")


@pytest.fixture(scope="module")
def gap_bin(tmp_path_factory):
    """The pre-parser stand-in from git history, laid out like tests/standins (bin/ next to _standin.py)."""
    old = subprocess.run(["git", "-C", str(ROOT), "show", f"{GAP_COMMIT}:tests/standins/bin/pfctl"],
                         capture_output=True, text=True, check=False)
    if old.returncode != 0:
        pytest.skip(f"commit {GAP_COMMIT} is not in this clone (shallow?): {old.stderr.strip()}")
    base = tmp_path_factory.mktemp("gap")
    (base / "bin").mkdir()
    (base / "bin" / "pfctl").write_text(old.stdout)
    (base / "bin" / "pfctl").chmod(0o755)
    shutil.copy(STANDINS / "_standin.py", base / "_standin.py")
    return base / "bin"


def _playbook(base: Path, cases: dict[str, tuple[Path, dict]]) -> dict:
    """One ansible-playbook run, one play per case: the role's template task (dest in `base`, the role's validate,
    the case's variables as task vars) and the same render through the template lookup, written to
    `<case>.rendered` for the exact-line checks;
    a last play writes the role's /etc/pf.conf block into `base`/pf.conf with the role's blockinfile task."""
    write = _task("Write the Ollama anchor")["ansible.builtin.template"]
    ref = _task("Reference the anchor from /etc/pf.conf")["ansible.builtin.blockinfile"]
    common = {"hosts": "localhost", "gather_facts": False, "vars": {"hardening_state": "present"},
              "vars_files": [str(ROOT / "roles/hardening/defaults/main.yml"), str(ROOT / "roles/hardening/vars/main.yml")]}
    plays = [{"name": key, **common, "tasks": [
        {"name": "anchor", "vars": task_vars, "ignore_errors": True,
         "ansible.builtin.template": {"src": str(src), "dest": f"{base}/{key}.anchor", "mode": "0644",
                                      "validate": write["validate"]}},
        {"name": "rendered", "vars": task_vars,  # the same render on the controller (template lookup), no module
         "ansible.builtin.set_fact": {"rendered": f"{{{{ lookup('ansible.builtin.template', '{src}') }}}}"}},
    ]} for key, (src, task_vars) in cases.items()]
    plays.append({"name": "pf.conf", **common, "tasks": [
        {"name": "pf.conf", "ignore_errors": True, "vars": {"hardening_ollama_pf_anchor_path": f"{base}/real.anchor"},
         "ansible.builtin.blockinfile": {"path": f"{base}/pf.conf", "marker": ref["marker"], "block": ref["block"],
                                         "state": ref["state"], "validate": ref["validate"]}}]})
    (base / "play.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    (base / "state").mkdir(exist_ok=True)
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{STANDINS / 'bin'}:{os.environ['PATH']}", "AGENTSEC_STANDIN_DIR": str(base / "state")}
    done = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(base / "play.yml"),
                           "-e", json.dumps({"ansible_python_interpreter": sys.executable})],
                          env=env, capture_output=True, text=True, check=False, cwd=ROOT, timeout=300)
    assert "{" in done.stdout, done.stdout + done.stderr
    report = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{"):])[0]  # profile_tasks may follow
    results = {}
    for play in report["plays"]:
        results[play["play"]["name"]] = play["tasks"][0]["hosts"]["localhost"]
        if len(play["tasks"]) > 1:
            (base / f"{play['play']['name']}.rendered").write_text(
                play["tasks"][1]["hosts"]["localhost"]["ansible_facts"]["rendered"] + "\n")
    return results


# (case, mutation of the template text, expected message, line of the template's rule it hits, the grammar rule,
#  whether the pre-parser stand-in let it through)
MUTATIONS = [
    ("quick-before-direction", ("pass in quick on lo0", "pass quick in on lo0"), "syntax error", "pass quick in",
     "pfrule: action dir logquick interface ..., parse.y:1841 / pf.conf.5:2850", True),
    ("unknown-trailing-keyword", ("to any port {{ ports }}\nblock",
                                  "to any port {{ ports }} allowme\nblock"),
     "syntax error", "allowme", "filter_opts ends the rule, parse.y:2255-2271", True),
    ("unknown-first-keyword", ("block drop in quick", "deny drop in quick"), "syntax error", "deny drop",
     "ruleset alternatives, parse.y:509-526", False),
    ("table-without-angle-brackets", ("table <agentsec_ollama_ok> const", "table agentsec_ollama_ok const"),
     "syntax error", "table agentsec", "tabledef: TABLE '<' STRING '>' table_opts, parse.y:1340", True),
    ("table-unknown-option", ("> const {", "> konst {"), "invalid table option 'konst'", "table <",
     "table_opt, parse.y:1388-1400", True),
    ("table-missing-close-brace", ("join(', ') }} }", "join(', ') }}"), "syntax error", "pass in quick on lo0",
     "table_opt: '{' optnl host_list '}', parse.y:1403", False),
    ("table-extra-close-brace", ("join(', ') }} }", "join(', ') }} } }"), "syntax error", "table <",
     "tabledef, parse.y:1340", False),
    ("port-without-tcp-udp", ("pass in quick proto tcp from <agentsec_ollama_ok>", "pass in quick proto icmp from <agentsec_ollama_ok>"),
     "port only applies to tcp/udp", "proto icmp", "filter_consistent(), parse.y:4383-4392", True),
    ("unknown-protocol", ("block drop in quick proto tcp", "block drop in quick proto tcpp"), "unknown protocol tcpp",
     "proto tcpp", "protoval, parse.y:2652-2662", True),
]


def _mutate(text: str, old: str, new: str) -> str:
    assert old in text, f"the template no longer contains {old!r}: update this test's mutation"
    return text.replace(old, new, 1)


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


BAD_INPUTS = [
    ("mask-too-long", {"hardening_ollama_allowed_sources": ["192.168.65.0/33"]}, "could not parse host specification"),
    ("hostname", {"hardening_ollama_allowed_sources": ["ollama.example"]}, "could not parse host specification"),
    ("table-in-table", {"hardening_ollama_allowed_sources": ["<agentsec_other>"]}, "tables cannot contain tables"),
    ("port-out-of-range", {"hardening_ollama_ports": [11434, 70000]}, "illegal port value 70000"),
]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One playbook run through ansible-core: the real template, every mutation, every bad input, the pf.conf block."""
    base = tmp_path_factory.mktemp("pf")
    (base / "com.apple").write_text(APPLE_ANCHOR)
    (base / "pf.conf").write_text(APPLE_PF_CONF.format(apple=base / "com.apple"))
    cases = {"real": (TEMPLATE, {})}
    for mutation in MUTATIONS:
        path = base / f"{mutation[0]}.pf.j2"
        path.write_text(_mutate(TEMPLATE.read_text(), *mutation[1]))
        cases[mutation[0]] = (path, {})
    for bad in BAD_INPUTS:
        cases[bad[0]] = (TEMPLATE, bad[1])
    return base, _playbook(base, cases)


@pytest.mark.oracle("ansible-core", "upstream")
def test_real_template_parses_and_pf_conf_references_it(rendered, pf):
    base, results = rendered
    real = results["real"]
    assert not real.get("failed"), real
    anchor = base / "real.anchor"
    assert pf.run("-nf", anchor).returncode == 0
    pfconf = results["pf.conf"]
    assert not pfconf.get("failed"), pfconf
    text = (base / "pf.conf").read_text()
    assert 'anchor "agentsec.ollama"' in text and f'load anchor "agentsec.ollama" from "{anchor}"' in text
    loaded = pf.run("-f", base / "pf.conf")
    assert loaded.returncode == 0, loaded.stderr
    rules = pf.run("-a", "agentsec.ollama", "-s", "rules").stdout.splitlines()
    assert [r.split(" proto")[0] for r in rules] == ["pass in quick on lo0", "pass in quick", "block drop in quick"]
    assert 'anchor "200.AirDrop/*"' in pf.run("-a", "com.apple", "-s", "rules").stdout


@pytest.mark.oracle("ansible-core", "upstream")
@pytest.mark.parametrize("case,mutation,message,needle,rule,gap_accepts", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutated_template_is_refused(rendered, pf, case, mutation, message, needle, rule, gap_accepts):
    base, results = rendered
    result = results[case]
    assert result.get("failed"), f"{case} was accepted ({rule})"
    assert not (base / f"{case}.anchor").exists()  # validate failed: nothing written
    bad = base / f"{case}.rendered"  # the same template rendered without validate, for the exact line
    done = pf.run("-nf", bad)
    assert done.returncode == 1
    assert f"{bad}:{_line_of(bad, needle)}: {message}" in done.stderr.splitlines(), done.stderr
    assert message in result["stderr"], result


@pytest.mark.oracle("self")
@pytest.mark.parametrize("case,mutation,message,needle,rule,gap_accepts",
                         [m for m in MUTATIONS if m[5]], ids=[m[0] for m in MUTATIONS if m[5]])
def test_gap_stand_in_let_these_through(rendered, gap_bin, tmp_path, case, mutation, message, needle, rule, gap_accepts):
    base = rendered[0]
    old = Pf(tmp_path, gap_bin).run("-nf", base / f"{case}.rendered")
    assert old.returncode == 0, f"the pre-parser stand-in already refused {case}: {old.stderr}"


@pytest.mark.oracle("ansible-core", "upstream")
@pytest.mark.parametrize("case,task_vars,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_role_inputs_are_refused_by_validate(rendered, pf, case, task_vars, message):
    """host: STRING '/' NUMBER (parse.y:2840-2852), table_opt entries (parse.y:1404-1434), getservice()
    (parse.y:5904-5912). A hostname would be resolved by the real pfctl (host_dns); the stand-in refuses it."""
    base, results = rendered
    assert results[case].get("failed") and message in results[case]["stderr"], results[case]
    assert not (base / f"{case}.anchor").exists()
    assert message in pf.run("-nf", base / f"{case}.rendered").stderr


@pytest.mark.oracle("ansible-core", "upstream")
def test_mutated_pf_conf_block_is_refused(tmp_path, pf):
    """load-anchor = "load anchor" string "from" filename (pf.conf.5:2913, parse.y:996)."""
    anchor = tmp_path / "a.anchor"
    anchor.write_text("pass in all\n")
    conf = tmp_path / "pf.conf"
    conf.write_text(APPLE_PF_CONF.format(apple=anchor) + f'anchor "agentsec.ollama"\nload anchor "agentsec.ollama" "{anchor}"\n')
    done = pf.run("-nf", conf)
    assert done.returncode == 1 and f"{conf}:8: syntax error" in done.stderr


@pytest.mark.oracle("upstream")
@pytest.mark.parametrize("text,expected", [
    ("pass in quick proto tcp from any to any port 11434\npass in quick proto tcp to any port { 22, 80:90 }\n", []),
    ("ok_if = \"lo0\"\npass in on $ok_if proto tcp from any \\\n  to any port 11434\n", []),
    ("pass in on $nope all\n", [(1, "macro 'nope' not defined"), (1, "syntax error")]),
    ("block drop in quick log all\nblock drop in log quick all\npass log quick in all\n", [(3, "syntax error")]),
    ("pass in all\nset block-policy drop\n",
     [(2, "Rules must be in order: options, normalization, queueing, translation, filtering")]),
    ("set require-order no\npass in all\nset block-policy drop\n", []),
    ("set skip on lo0\nset skip on { lo0 en0 }\nset skip lo0\n", [(3, "syntax error")]),
    ("table <t> { 10.0.0.1 - 10.0.0.9 }\n", [(1, "address ranges are not permitted inside tables")]),
    ("anchor\nanchor \"_x\"\n",
     [(1, "anchors without explicit rules must specify a name"), (2, "anchor names beginning with '_' are reserved for internal use")]),
    ('pass in proto tcp from any to any port 80 label "a # b"\n', []),
    ("pass in proto tcp from any to any port 80 keep\n", [(1, "syntax error")]),
], ids=["lists-and-ranges", "macro-and-continuation", "undefined-macro", "log-quick-order", "rule-order",
        "require-order-no", "set-skip", "range-in-table", "anchor-names", "hash-in-quotes", "keep-without-state"])
def test_grammar_cases(pf, tmp_path, text, expected):
    """Lexer and grammar rules cited in the stand-in (parse.y yylex 5446-5612, logquick 2530, check_rulestate
    5195, option 569-688, tabledef 1340-1453, anchorrule 773-994)."""
    conf = tmp_path / "case.conf"
    conf.write_text(text)
    done = pf.run("-nf", conf)
    got = [(int(m.group(1)), m.group(2)) for m in re.finditer(rf"^{re.escape(str(conf))}:(\d+): (.*)$", done.stderr, re.M)]
    assert got == expected, done.stderr
    assert done.returncode == (1 if expected else 0)


@pytest.mark.oracle("self")
def test_outside_the_subset_is_refused_not_accepted(pf, tmp_path):
    conf = tmp_path / "nat.conf"
    conf.write_text("nat on en0 from 10.0.0.0/8 to any -> (en0)\npass out route-to (en1 10.0.0.1) all\n")
    done = pf.run("-nf", conf)
    assert done.returncode == 1
    assert f"pfctl stand-in: {conf}:1: 'nat' is outside the pf.conf subset this stand-in parses" in done.stderr
    assert f"pfctl stand-in: {conf}:2: 'route-to' is outside the pf.conf subset this stand-in parses" in done.stderr


@pytest.mark.oracle("upstream")
def test_syntax_errors_leave_state_alone_and_name_the_failure(pf, tmp_path):
    """Without -n pfctl adds "Syntax error in config file: pf rules not loaded" (pfctl.c:1478-1484); a bad file
    named by `load anchor` fails the load with "load anchors" (pfctl.c:1504-1507), under -n too."""
    bad = tmp_path / "bad.anchor"
    bad.write_text("pass in quick proto tcp from any to any port 11434\npass quick in all\n")
    done = pf.run("-a", "agentsec.ollama", "-f", bad)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"{bad}:2: syntax error", "pfctl: Syntax error in config file: pf rules not loaded"]
    assert pf.run("-a", "agentsec.ollama", "-s", "rules").stdout.strip() == ""
    conf = tmp_path / "pf.conf"
    conf.write_text(f'anchor "agentsec.ollama"\nload anchor "agentsec.ollama" from "{bad}"\n')
    for flags in (("-nf",), ("-f",)):
        done = pf.run(*flags, conf)
        assert done.returncode == 1 and done.stderr.splitlines()[-1] == "pfctl: load anchors", done.stderr
    assert json.loads((pf.state / "pfctl.json").read_text()).get("main") is None
