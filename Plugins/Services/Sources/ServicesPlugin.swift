import BerthKit // the Services plugin: see issues
