# Entry points named in the README. Both do all set-up themselves on a fresh Linux machine.
.PHONY: test lab lint unit molecule sanity venv clean

test:        ## every check: yamllint, ansible-lint, sanity, pytest, molecule
	bash scripts/test.sh

lab:         ## the main job on the local lab: verify -> harden -> verify (LINE=openshell_host or openshell_0_1: a current line)
	LINE="$(LINE)" bash scripts/lab.sh

lint:
	bash scripts/test.sh yamllint ansible-lint sanity

unit:
	bash scripts/test.sh unit

molecule:
	bash scripts/test.sh molecule

venv:
	bash -c 'source scripts/lib.sh && ensure_venv'

clean:
	rm -rf .build reports
