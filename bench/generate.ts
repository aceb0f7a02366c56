export async function benchGenerate() { console.log("(todo)"); }
