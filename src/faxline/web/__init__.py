"""The web fax center: server-rendered pages for people, on the API's port."""
