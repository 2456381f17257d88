# Ferry: the two commands are `make run` and `make check` (see README.md).
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build asan check test test-asan tsan lint fuzz-replay bench clean run install deb

all: build

deps:
	scripts/install-deps

# Ninja (scripts/install-deps installs it) schedules the compiles of every library at once;
# asked in the recipe, after deps, so that a fresh machine uses it on the first build too.
GENERATOR = $$(command -v ninja >/dev/null && echo -G Ninja)

# The plain build compiles the libraries in batches (FERRY_UNITY_BUILD, CMakeLists.txt);
# the ASan+UBSan build compiles every source on its own.
$(BUILD)/CMakeCache.txt:
	cmake $(GENERATOR) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake $(GENERATOR) -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON \
	  -DFERRY_BENCH=OFF -DFERRY_UNITY_BUILD=OFF $(CMAKE_FLAGS)

$(TSAN_BUILD)/CMakeCache.txt:
	cmake $(GENERATOR) -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_TSAN=ON \
	  -DFERRY_BENCH=OFF $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

lint:
	scripts/check

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# make tsan = a ThreadSanitizer build running the tests where threads meet: ferryd (reactors,
# admin socket, metrics listener, FUSE, copy engine) under real clients, and the unit tests
# (scripts/tsan-test; not part of make check).
tsan: deps $(TSAN_BUILD)/CMakeCache.txt
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	scripts/tsan-test $(TSAN_BUILD) $(JOBS)

# make check = install deps, lint, build (plain and ASan+UBSan), run every test in both.
check: deps lint test test-asan
	@echo "make check: all checks passed"

# make run = install deps, build, start ferryd in the foreground on its embedded default
# (RAM LUN 0 and file LUN 1 behind iqn.2026-11.org.ferry:demo on 127.0.0.1:3260). Ctrl-C
# stops it. STATE_DIR keeps the LUN identities and the file LUN between runs.
# Builds only ferryd and ferryctl, not the tests.
STATE_DIR ?= $(BUILD)/ferry-state
run: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target ferryd ferryctl
	$(BUILD)/src/daemon/ferryd --state-dir $(STATE_DIR)

# make install = under PREFIX (default /usr/local; DESTDIR is honoured): ferryd in sbin/,
# ferryctl in bin/, libferry (libferry.so.1, <ferry/ferry.h>, ferry.pc), the man pages
# ferryd(8), ferryctl(8), ferryd.json(5); ferryd.service in /lib/systemd/system for PREFIX=/usr,
# else PREFIX/lib/systemd/system; the example /etc/ferry/ferryd.json unless one is there.
# State goes to /var/lib/ferry. Builds only what it installs.
PREFIX ?= /usr/local
install: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target ferryd ferryctl ferry man
	cmake --install $(BUILD) --prefix $(PREFIX)

# make deb = the same files (prefix /usr) as a Debian package, $(BUILD)/packages/ferry_*.deb:
# CPack's DEB generator (dpkg-deb, dpkg-shlibdeps) over the existing build, no rebuild.
deb: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target ferryd ferryctl ferry man
	cd $(BUILD) && cpack -G DEB

bench: build
	scripts/install-deps --bench
	bench/run-all $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
