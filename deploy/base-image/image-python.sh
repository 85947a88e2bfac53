# Sourced by bootstrap.sh and lock.sh: pip flags that pick wheels for the image's Python
# (Debian bookworm's CPython 3.11.2 on this machine's architecture) instead of the host's,
# so the host's pip can download, and lock, what the image installs.
IMAGE_PYTHON_VERSION=3.11.2
image_pip_target=(--only-binary=:all: --python-version "$IMAGE_PYTHON_VERSION" --implementation cp
  --abi cp311 --abi abi3 --abi none --platform "manylinux2014_$(uname -m)")
# glibc 2.36 is bookworm's; older pip does not expand one manylinux tag into the ones below it.
for glibc_minor in $(seq 17 36); do
  image_pip_target+=(--platform "manylinux_2_${glibc_minor}_$(uname -m)")
done
