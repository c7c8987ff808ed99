// Runs before the page paints (a classic script, not a module), so a chosen theme never flashes.
(function () {
  try {
    var theme = localStorage.getItem("groundglass.theme");
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage blocked: follow the system */ }
})();
