// Types of the text imports (`with { type: "text" }`) that compile the UI and Swagger UI files into the server.

declare module "../../ui/*" {
  const text: string;
  export default text;
}
declare module "*/swagger-ui-bundle.js" {
  const text: string;
  export default text;
}
declare module "*/swagger-ui.css" {
  const text: string;
  export default text;
}
declare module "*/preact/dist/preact.mjs" {
  const text: string;
  export default text;
}
declare module "*/preact/hooks/dist/hooks.mjs" {
  const text: string;
  export default text;
}
declare module "*/htm/dist/htm.mjs" {
  const text: string;
  export default text;
}
