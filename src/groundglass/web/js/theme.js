// Runs before the page paints (a classic script, not a module), so a theme never flashes. The page always
// carries data-theme: the stored choice, else the system's, which it follows until the user picks one.
(function () {
  var system = matchMedia("(prefers-color-scheme: dark)");
  var stored = null;
  try {
    stored = localStorage.getItem("groundglass.theme");
  } catch (e) { /* storage blocked: follow the system */ }
  function follow() {
    document.documentElement.dataset.theme = system.matches ? "dark" : "light";
  }
  if (stored === "light" || stored === "dark") {
    document.documentElement.dataset.theme = stored;
  } else {
    follow();
    system.addEventListener("change", function () {
      var chosen = null;
      try { chosen = localStorage.getItem("groundglass.theme"); } catch (e) { /* blocked */ }
      if (chosen !== "light" && chosen !== "dark") follow();
    });
  }
})();
