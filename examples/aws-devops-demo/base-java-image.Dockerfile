# A base image that runs the demo service on machines that cannot pull from a public
# registry: a static busybox for the shell (RUN steps, run-dev-mode.sh), a Java runtime made
# with the host's jlink (java.base and jdk.httpserver, all the service uses) under /opt/java,
# and the glibc libraries that runtime links, at the paths `ldd` names.
FROM scratch
COPY rootfs/ /
ENV JAVA_HOME=/opt/java PATH=/opt/java/bin:/bin
CMD ["/bin/sh"]
