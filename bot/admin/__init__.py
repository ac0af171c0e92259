"""The admin pages and JSON API: query logs, unanswered groups, links, review queue, stats.
They read and write only through the query store (bot.store), never SQL of their own."""
