"""The webhook workers talk to: WeChat's signature, AES and XML (protocol.py), the views, the
conversation (follow-ups, candidates, votes) and customer-service messages."""
