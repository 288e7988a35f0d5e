# The two commands of the README. Each sets up .venv on its own.
.PHONY: demo test
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
