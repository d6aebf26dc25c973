console.log("hello from main", process.pid, process.argv.slice(2))
