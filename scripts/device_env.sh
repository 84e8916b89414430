# Sourced by the device scripts (gpu_check.sh, gpu_accuracy.sh), from the repository root with REPO set:
# the environment that runs this checkout on a machine where it is not installed.
#
# The package maps top-level folders onto one namespace (hdl/ -> essop.hdl, training/ -> essop.training, ...).
# Without an installed copy, a sitecustomize on PYTHONPATH adds the repository root to essop.__path__ so that
# essop.golden, essop.training etc. resolve to golden/, training/ in every Python process (subprocesses too).
# Sets WORK (a fresh temporary folder; the caller removes it), CACHE (the decoded CIFAR-10 cache in it),
# PYTHONPATH and ESSOP_CIFAR10 (default: the data zip carried into the ignored folder .data/).
WORK=$(mktemp -d)
cat > "$WORK/sitecustomize.py" <<PYEOF
try:
    import essop
    if "$REPO" not in essop.__path__:
        essop.__path__.append("$REPO")
except Exception:
    pass
PYEOF
export PYTHONPATH="$WORK:$REPO${PYTHONPATH:+:$PYTHONPATH}"
export ESSOP_CIFAR10=${ESSOP_CIFAR10:-$REPO/.data/cifar10-jpeg.zip}
CACHE="$WORK/cache"
