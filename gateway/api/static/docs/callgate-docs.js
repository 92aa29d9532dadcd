// Swagger UI over this gateway's own /openapi.json. The validator badge is off: it would send the document
// to validator.swagger.io and load an image from there, and this page loads nothing from outside.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
