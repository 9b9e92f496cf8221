// Render the math that pymdownx.arithmatex (generic: true) leaves in the page:
// \( ... \) inline and \[ ... \] displayed, inside elements of class "arithmatex".
// KaTeX is served from docs/javascripts/katex/: no network connection needed.
(function () {
  function render(root) {
    root.querySelectorAll(".arithmatex").forEach(function (el) {
      renderMathInElement(el, {
        delimiters: [
          { left: "\\(", right: "\\)", display: false },
          { left: "\\[", right: "\\]", display: true },
        ],
        throwOnError: false,
      });
    });
  }
  if (typeof document$ !== "undefined") {
    // Material for MkDocs: also after instant navigation loads a new page
    document$.subscribe(function () { render(document); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { render(document); });
  } else {
    render(document);
  }
})();
