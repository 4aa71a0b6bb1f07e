import json
import os

from channels.generic.websocket import AsyncWebsocketConsumer

ROOM = "chat"


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.channel_layer.group_add(ROOM, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(ROOM, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Echo to the sender...
        await self.send(json.dumps({"message": f"Echo: {text_data}", "pid": os.getpid()}))
        # ...and broadcast to every member of the group, through the channel layer.
        await self.channel_layer.group_send(ROOM, {"type": "chat.message", "text": text_data})

    async def chat_message(self, event: dict) -> None:
        await self.send(json.dumps({"broadcast": event["text"], "pid": os.getpid()}))
