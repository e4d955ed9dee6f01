#!/usr/bin/env bash
# Prints the classpath of Debian's gRPC Java jars (and their dependencies),
# for compiling and running Java callers of keyservice without Maven
# (docs/clients.md#java). A missing jar fails with the Debian package that
# provides it. JAVA_DIR overrides /usr/share/java.
set -euo pipefail
dir="${JAVA_DIR:-/usr/share/java}"
# jar (without .jar)            Debian package
jars="
grpc-api                        libgrpc-java
grpc-core                       libgrpc-java
grpc-context                    libgrpc-java
grpc-netty                      libgrpc-java
grpc-protobuf                   libgrpc-java
grpc-protobuf-lite              libgrpc-java
grpc-stub                       libgrpc-java
guava                           libguava-java
protobuf                        libprotobuf-java
perfmark-api                    libperfmark-java
netty-transport                 libnetty-java
netty-buffer                    libnetty-java
netty-common                    libnetty-java
netty-codec                     libnetty-java
netty-codec-http                libnetty-java
netty-codec-http2               libnetty-java
netty-handler                   libnetty-java
netty-resolver                  libnetty-java
netty-handler-proxy             libnetty-java
netty-codec-socks               libnetty-java
netty-transport-native-unix-common libnetty-java
geronimo-annotation-1.3-spec    libgeronimo-annotation-1.3-spec-java
error_prone_annotations         liberror-prone-java
jsr305                          libjsr305-java
"
cp=()
missing=()
while read -r jar pkg; do
	[ -n "$jar" ] || continue
	if [ -f "$dir/$jar.jar" ]; then
		cp+=("$dir/$jar.jar")
	else
		missing+=("$dir/$jar.jar (Debian package $pkg)")
	fi
done <<<"$jars"
if [ ${#missing[@]} -gt 0 ]; then
	echo "java-classpath: missing:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	pkgs=$(printf '%s\n' "${missing[@]}" | sed 's/.*package \(.*\))/\1/' | sort -u | tr '\n' ' ')
	echo "install them: apt-get install $pkgs" >&2
	exit 1
fi
(IFS=:; echo "${cp[*]}")
