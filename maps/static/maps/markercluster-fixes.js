/*
 * Fixes to Leaflet.markercluster 1.5.3 (maps/static/vendor/markercluster), loaded right after it
 * on every page that clusters markers (maps/pages.py: VENDOR_FOLLOWERS).
 *
 * Its DistanceGrid never gives back the rows of its grid (upstream issue #977, open):
 * removeObject() deletes a cell it empties but leaves the cell's row behind, and when the object
 * is not in the cell it looks in (markercluster asks at each zoom, from the highest down to the
 * first where the marker is not on its own: it is in a cluster there) it makes that row and an
 * empty cell to look in. Every marker removed left one or two of them in each cluster group:
 * the wall, which removes a marker for each incident closed, for days, kept ~1,600 empty rows
 * and ~340 empty cells more after ten minutes at 5 events a second (bench/wall.py).
 *
 * The same answers (true when the object was found and removed there), and a grid that holds
 * only rows and cells with objects in them.
 */
(function () {
  "use strict";
  if (!window.L || !L.DistanceGrid) return;
  L.DistanceGrid.prototype.removeObject = function (obj, point) {
    var x = this._getCoord(point.x), y = this._getCoord(point.y);
    var grid = this._grid, row = grid[y], cell = row ? row[x] : undefined;
    delete this._objectPoint[L.Util.stamp(obj)];
    if (!cell) return false;
    var i = cell.indexOf(obj);
    if (i < 0) return false;
    cell.splice(i, 1);
    if (cell.length === 0) {
      delete row[x];
      if (Object.keys(row).length === 0) delete grid[y];
    }
    return true;
  };
})();
