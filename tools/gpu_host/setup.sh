# Sourced on the GPU host, in the repo root, after bundle.sh's .gpu_bundle came along:
#   source tools/gpu_host/setup.sh
# Installs the carried wheels into /tmp/site and the TTS engines into /opt/tts (as root: they
# look for their data under /usr, where symbolic links are made), once per host.
export PYTHONUNBUFFERED=1
if [ ! -d /tmp/site ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu_bundle/whl/*.whl || return 1
fi
export PYTHONPATH=/tmp/site:$PWD
if [ ! -d /opt/tts ]; then
  mkdir -p /opt/tts && tar -xJf .gpu_bundle/tts.tar.xz -C /opt/tts
  libdir=/usr/lib/x86_64-linux-gnu
  [ -e $libdir/espeak-ng-data ] || ln -s /opt/tts/share/espeak-ng-data $libdir/espeak-ng-data
  [ -e /usr/share/festival ] || ln -s /opt/tts/share/festival /usr/share/festival
  [ -e /etc/festival.scm ] || cp /opt/tts/share/etc-festival.scm /etc/festival.scm
fi
# The engines' libraries only for the synthesis (they must not shadow the host's own):
tts() { env PATH=/opt/tts/bin:$PATH LD_LIBRARY_PATH=/opt/tts/lib "$@"; }
