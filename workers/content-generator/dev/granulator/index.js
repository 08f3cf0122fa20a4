// Granulator stand-in for the Content Generator's own suite: `GET /` answers
// as the granulator's does (its /health check); every other route is a JSON
// 404, so a structureReference fetched through it is "not found" (422 in the
// generator). The real granulator is bound by the root's chain stack.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname === "/") {
      return Response.json({ status: "healthy", service: "bitware-content-granulator", standIn: true });
    }
    return Response.json({ error: "the granulator stand-in has no jobs", status: 404, code: "not_found" }, { status: 404 });
  },
};
