# Convenience targets; the README's two commands are the canonical entry points.
.PHONY: setup demo test test-slow
setup:
	bash scripts/setup.sh
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
test-slow:
	bash scripts/test.sh -m slow
