// TCP listeners for the lab: accept on every port given, dual-stack on "::", answer "ok\n" to any data.
// Usage: bun listener.ts PORT...
for (const port of process.argv.slice(2).map(Number)) {
  Bun.listen({
    hostname: "::",
    port,
    socket: {
      data(socket) {
        socket.write("ok\n");
      },
    },
  });
}
console.log("listening");
