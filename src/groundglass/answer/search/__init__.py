"""Web search: providers behind one small interface (:mod:`.base`), failover and a result cache
(:mod:`.failover`, :mod:`.cache`), filters enforced by us (:mod:`.filters`), and the retriever that
reads and ranks the pages (:mod:`.web`: ``WebRetriever(settings).retrieve(query, filters, size)``).
"""
