"""The graph's nodes, one module each: ``start``, ``plan``, ``observe``, ``refer``, ``respond``.

Each node is a function ``(state, ctx) -> update``: the conversation (``AgentState``) and the
run's dependencies (``AgentContext``) in, a partial update of the state out. Which node runs
next is decided by the routers in ``agent.conversation.graph``, never inside a node. The
``tools`` node is LangGraph's ``ToolNode`` over ``agent.conversation.tool_node.AgentTools``.
"""
