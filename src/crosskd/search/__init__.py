"""Search a video collection with a trained model: `Index.load(path).search(query, k)`.

Above models, data and checkpoint (it embeds with them) and train (it reuses evaluation's
embedding), below commands.
"""

from crosskd.search.index import Index
from crosskd.search.query import Hit, Query

__all__ = ["Hit", "Index", "Query"]
