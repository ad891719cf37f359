# Sourced by the scripts: makes sure .venv exists with pygoka and its test dependencies installed,
# and exports VENV and PYTHON. Reinstalls only when pyproject.toml changed.
VENV="${PYGOKA_VENV:-$PWD/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
stamp="$VENV/.pygoka-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[test]'
  touch "$stamp"
fi
export VENV
export PYTHON="$VENV/bin/python"
