// leaf7 API explorer: Swagger UI (vendored, explorer/swagger-ui-bundle.js) over /openapi.json.
// This file is served by leaf7 itself: the page's CSP has no 'unsafe-inline' script.
(function () {
  "use strict";

  // "Try it out" always calls the server that served this page (the document's server URL
  // is LEAF7_PUBLIC_URL, which may name another host: the CSP's connect-src 'self' would
  // refuse it).
  function sameOrigin(req) {
    try {
      var url = new URL(req.url, window.location.href);
      if (url.origin !== window.location.origin) {
        req.url = window.location.origin + url.pathname + url.search;
      }
    } catch (e) {
      /* a relative URL: already ours */
    }
    return req;
  }

  window.addEventListener("DOMContentLoaded", function () {
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null, // no call to an outside validator
      defaultModelsExpandDepth: 0,
      displayRequestDuration: true,
      requestInterceptor: sameOrigin,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
  });
})();
