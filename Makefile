# The README's commands. Each sets up .venv on its own.
.PHONY: demo test lab
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
lab:
	bash scripts/lab.sh
